"""What several maild instances on one database share: leases that elect one worker for a job."""
