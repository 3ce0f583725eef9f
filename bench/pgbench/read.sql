-- L_read: a member's balance, by primary key.
\set member random(1, :members)
SELECT balance FROM loyalty_member WHERE id = :member;
