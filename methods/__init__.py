"""Methods, one module each. Every module registers its class with `@register_method`; the
platform imports them all through `zsar.registry.load_plugins` and never by name."""
