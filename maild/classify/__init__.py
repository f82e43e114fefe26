"""Facts about a message before routing: sender domain, private sender, machine mail."""
