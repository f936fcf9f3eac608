-- Named rate budgets (the platform dialect counts media playback apart):
-- each row of the grant log belongs to one. Rows written before budgets
-- had names were all the API budget's, and keep counting as its own.
ALTER TABLE rate_limit_log ADD COLUMN budget TEXT NOT NULL DEFAULT 'api';

DROP INDEX rate_limit_log_done;
CREATE INDEX rate_limit_log_budget_done ON rate_limit_log (budget, done_at);
