"""Training-loop integrations (``lightning``, ``transformers``): each module imports its framework
only when it is imported itself, and uses only tvault-git's public API."""
