"""Building blocks of the KumoMTA platform: settings, the port matrix, and the host components."""
