-- Claims take due rows lane by lane and, within a lane, a share from each service with due work, so that
-- one service's backlog cannot hold up another's messages (each is one index range per service).
CREATE INDEX messages_due_by_service ON messages (lane, service_id, next_at) WHERE next_at IS NOT NULL;
-- It also answers "when is the next work due" (a seek per lane and service), so the old index goes.
DROP INDEX messages_due;
