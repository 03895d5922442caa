"""The one exception users see for bad input; the CLI turns it into a message and exit 2."""


class SpecError(ValueError):
    """A network description that cannot be used.

    ``field`` names where the problem is (``network.activation[1]``), and the message
    says what would be right, so the CLI can print it without a traceback.
    """

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}" if field else message)
        self.field, self.message = field, message
