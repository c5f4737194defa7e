"""The adapters (installed as classsr_plugin.registry; the folder keeps the design's name): each
file connects the toolkit-independent core to one toolkit. Import the one you use:
`classsr_plugin.registry.basicsr` (BasicSR's registries, model, dataset, train entry),
`classsr_plugin.registry.mmengine` (mmengine's Runner), `classsr_plugin.registry.mmagic` (MMagic)."""
