-- L_hist: the newest page of 50 entries of a customer with a long history (one more row
-- tells whether there is a next page).
\set member random(:customer_low, :customer_high)
SELECT id, kind, points, balance_after, created_at, reference
FROM loyalty_ledgerentry WHERE member_id = :member ORDER BY id DESC LIMIT 51;
