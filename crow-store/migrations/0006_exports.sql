-- CROW relational schema, version 6: exports, and the indexes the REST catalog needs.
-- D1-compatible, like 0001.

-- Exports requested through the API and written by the `export-report` workflow. `status` is
-- `queued`, `running`, `succeeded` or `failed`; `filters` is the ExportFilters JSON; `object_key`
-- names the file in the object store once it succeeded. Ids are unique per org.
CREATE TABLE exports (
    org_id       TEXT NOT NULL,
    id           TEXT NOT NULL,
    resource     TEXT NOT NULL,
    format       TEXT NOT NULL,
    filters      TEXT NOT NULL DEFAULT '{}',
    status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    created_at   INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    row_count    INTEGER,
    byte_count   INTEGER,
    error        TEXT,
    object_key   TEXT,
    PRIMARY KEY (org_id, id)
);
-- Newest first.
CREATE INDEX exports_org_created ON exports (org_id, created_at, id);

-- Products by id (GET/PATCH/DELETE /api/v1/products/{id}) and by category (the list filter).
CREATE INDEX products_org_id ON products (org_id, id);
CREATE INDEX products_org_category ON products (org_id, category, sku);
-- Subcategories of a category (cycle checks, deletes).
CREATE INDEX categories_org_parent ON categories (org_id, parent);
