"""maild: the e-mail ticket intake daemon."""

__version__ = "0.1.0"
