# The shop's job system: one image for the workers, the scheduler, the migrate job and the
# stand-ins (docker-compose.yml picks the command). Runs as an unprivileged user.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SHOPJOBS_LOG_FORMAT=json \
    SHOPJOBS_METRICS_BIND=0.0.0.0
WORKDIR /app
COPY pyproject.toml constraints.txt ./
COPY . .
RUN pip install -c constraints.txt . && useradd --create-home shop
USER shop
# 9191: a worker instance's metrics (all its processes); 9192: the scheduler's metrics
EXPOSE 9191 9192
CMD ["shopjobs", "worker", "--processes", "2", "--threads", "8"]
