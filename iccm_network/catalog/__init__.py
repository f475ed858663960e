"""Resources, prompts and completion: what an app offers besides tools.

``resources`` and ``uri_templates`` compile ``@app.resource`` functions,
``prompts`` compiles ``@app.prompt`` functions, ``text_arguments`` reads
their string arguments, ``completion`` answers ``completion/complete``,
and ``table`` is the catalog the protocol serves from (``App`` registers
into it through ``iccm_network.app_catalog``). Internal: the public API is
``iccm_network.__all__``.
"""

__all__: list[str] = []
