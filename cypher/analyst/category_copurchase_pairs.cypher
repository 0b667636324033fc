// name: category_copurchase_pairs
// description: Pairs of (primary) categories bought by the same users, by number of users: which categories to cross-promote.
// param: min_users: int = 10 - only pairs bought by at least this many users
// param: limit: int = 25 - at most this many rows
// group_size: users
MATCH (u:User)-[:BOUGHT]->(:Product)-[:IN_CATEGORY {primary: true}]->(c:Category)
WITH u, collect(DISTINCT c) AS categories
UNWIND categories AS c1
UNWIND categories AS c2
WITH c1, c2 WHERE c1.id < c2.id
WITH c1, c2, count(*) AS users
WHERE users >= $min_users
RETURN c1.id AS category_1, c1.name AS name_1, c2.id AS category_2, c2.name AS name_2, users
ORDER BY users DESC, category_1, category_2
LIMIT $limit
