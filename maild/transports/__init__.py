"""Ways mail reaches maild: SMTP and LMTP listeners, IMAP mailboxes."""
