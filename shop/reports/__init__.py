"""Reports and exports: the daily sales report, CSV exports, customer data exports."""
