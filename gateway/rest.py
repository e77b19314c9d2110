"""/api/<table> in PostgREST's grammar, and /api/<table>/<pk> as a convenience: its routes.

Each handler is a few steps, each in its own module: the query string through
:mod:`gateway.grammar` (a tree), the ``Prefer`` header through :mod:`gateway.prefer`,
``Accept`` through :mod:`gateway.representation`; :mod:`gateway.rest_read`,
:mod:`gateway.rest_insert` and :mod:`gateway.rest_change` compile the tree with
:mod:`gateway.pgrest_sql` (catalog identifiers, values as parameters) and run it
through :mod:`gateway.api_db` (the token's role, a transaction where the answer
decides what is kept); :mod:`gateway.mutation` holds what the writes share.

``/api/<table>/<pk>`` answers as the filtered form ``?<pk>=eq.<pk>`` does with the
single-object media type, except that no such row is a 404: ``GET`` the row as an
object, ``PATCH``/``DELETE`` 204 (or the object with ``Prefer: return=representation``).
"""

from __future__ import annotations

from aiohttp import web

from . import rest_change, rest_insert, rest_read


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/{table}", rest_read.list_rows)
    app.router.add_post("/api/{table}", rest_insert.create_rows)
    app.router.add_patch("/api/{table}", rest_change.update_rows)
    app.router.add_delete("/api/{table}", rest_change.delete_rows)
    app.router.add_get("/api/{table}/{pk}", rest_read.get_row)
    app.router.add_patch("/api/{table}/{pk}", rest_change.update_row)
    app.router.add_delete("/api/{table}/{pk}", rest_change.delete_row)
