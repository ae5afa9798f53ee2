"""at most one waiting job per queueing lock, held by the database

Two processes deferring a job with the same queueing lock at the same moment could both find
none waiting and both write one. A unique index over the waiting jobs' queueing locks lets one
wait; the later duplicates a database may hold already are removed first.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 20:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: A waiting job's queueing lock, else NULL (which a unique index lets repeat). An index on this
#: expression rather than a partial index (``WHERE state = 'todo'``): SQLite prepares every
#: statement that compares ``state`` with a parameter again at each run when a partial index
#: might apply, which doubled the cost of a worker's empty ask for jobs.
WAITING_LOCK = "(CASE WHEN state = 'todo' THEN queueing_lock END)"


def upgrade() -> None:
    op.execute(
        "DELETE FROM job WHERE state = 'todo' AND queueing_lock IS NOT NULL AND id NOT IN ("
        "SELECT MIN(id) FROM job WHERE state = 'todo' AND queueing_lock IS NOT NULL "
        "GROUP BY queueing_lock)"
    )
    op.create_index("uq_job_waiting_queueing_lock", "job", [sa.text(WAITING_LOCK)], unique=True)


def downgrade() -> None:
    op.drop_index("uq_job_waiting_queueing_lock", table_name="job")
