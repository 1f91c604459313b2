"""HTTP routes: parse, authenticate, validate stages, call one service function, return its model."""
