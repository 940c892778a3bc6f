"""convbook: the library behind the executable book *Ten Questions About Convolution*.

One module per responsibility (see the README's map): ``blocks`` and ``nets`` build models,
``measure`` and ``receptive`` analyse them, ``data``, ``train``, ``profiles`` and ``experiments``
run the book's comparisons, ``viz`` and ``explore`` draw them.
"""

from convbook.errors import ConfigError, ConvbookError, DataNotFoundError

__version__ = "0.3.0"

__all__ = ["ConfigError", "ConvbookError", "DataNotFoundError", "__version__"]
