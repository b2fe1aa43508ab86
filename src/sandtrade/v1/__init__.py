"""Generated gRPC stubs of the ``sandtrade.v1`` protos (``python -m sandtrade.rpc.codegen``).

Do not edit: change ``proto/sandtrade/v1/*.proto`` and regenerate. Only
:mod:`sandtrade.rpc.convert`, the servicers and the client use these modules.
"""
