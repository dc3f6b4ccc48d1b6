FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt ./
COPY . .
RUN pip install --no-cache-dir -c constraints.txt . && useradd --create-home shop
USER shop
CMD ["dramatiq", "actors", "--processes", "2", "--threads", "8"]
