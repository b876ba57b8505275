"""What people see: alerts (apprise, outbox), the dashboard and metrics — later issues."""
