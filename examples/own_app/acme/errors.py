"""acme's own exception types."""


class InvalidOrderError(ValueError):
    """An order that cannot be priced: it says which field is wrong."""
