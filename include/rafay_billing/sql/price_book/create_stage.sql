-- The validated CSV rows, staged for the replace-and-upsert (dropped at commit).
CREATE TEMP TABLE price_book_stage (
    price_id        text        PRIMARY KEY,
    org_id          text        NULL,
    profile_type    text        NULL,
    profile         text        NULL,
    unit            text        NOT NULL,
    unit_price      numeric     NOT NULL,
    currency        char(3)     NOT NULL,
    effective_from  timestamptz NOT NULL,
    effective_to    timestamptz NULL,
    dimension       text        NULL,
    label_key       text        NULL,
    label_value     text        NULL
) ON COMMIT DROP;
