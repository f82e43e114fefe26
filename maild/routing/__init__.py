"""Domain routing: the admin-edited rules, and the chain that applies them."""
