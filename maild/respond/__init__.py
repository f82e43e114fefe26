"""What maild sends: acknowledgements, and the outbox that delivers them."""
