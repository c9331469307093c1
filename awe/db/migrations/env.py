"""Alembic environment: runs on the connection AWE hands over (see awe.db.schema)."""

from alembic import context

import awe.db.des  # noqa: F401  (registers the DES SE tables on Base.metadata)
import awe.db.frames  # noqa: F401  (registers the frame tables on Base.metadata)
import awe.db.pogs  # noqa: F401  (and the POGS work-unit tables)
import awe.db.tokens  # noqa: F401  (and the web service's token table)
from awe.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("AWE migrations run through `awe db upgrade` or awe.db.schema.upgrade()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
