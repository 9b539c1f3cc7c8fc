-- CROW relational schema, version 7: the A2A agent's tasks. D1-compatible, like 0001.

-- One task per skill call of the A2A agent. `state` is the agent's task state; `args`,
-- `status_message`, `history` and `artifacts` are JSON (scrubbed of PII by the agent before
-- they are written). A finished task (completed, canceled, failed, rejected) never changes.
-- Ids are unique per org.
CREATE TABLE agent_tasks (
    org_id          TEXT NOT NULL,
    id              TEXT NOT NULL,
    context_id      TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('submitted', 'working', 'input_required', 'completed',
                                                   'canceled', 'failed', 'rejected', 'auth_required')),
    skill           TEXT NOT NULL,
    args            TEXT NOT NULL DEFAULT '{}',
    actor           TEXT NOT NULL DEFAULT '',
    status_message  TEXT,
    history         TEXT NOT NULL DEFAULT '[]',
    artifacts       TEXT NOT NULL DEFAULT '[]',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (org_id, id)
);
-- Newest first, for the org and for one conversation.
CREATE INDEX agent_tasks_org_created ON agent_tasks (org_id, created_at, id);
CREATE INDEX agent_tasks_org_context ON agent_tasks (org_id, context_id, created_at, id);
