"""Adapters into toolkits' registries. Import the one you use:
`classsr_plugin.registry.basicsr` (BasicSR)."""
