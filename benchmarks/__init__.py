"""`make bench`: PokeWatch against a FastAPI peer and a bare Starlette ceiling (see run.py)."""
