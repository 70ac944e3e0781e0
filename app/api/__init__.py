"""HTTP adapters: routers resolve dependencies, call one service method and map the result."""
