// name: trendsetters
// description: Users whose purchases their friends most often follow: a friend bought the same product later (when either purchase has no time, it counts as followed).
// param: limit: int = 20 - at most this many rows
// param: min_followers: int = 1 - only users followed by at least this many distinct friends
// group_size: followers
MATCH (a:User)-[ra:BOUGHT]->(p:Product)<-[rb:BOUGHT]-(b:User)-[:FRIEND]-(a)
WHERE ra.ts IS NULL OR rb.ts IS NULL OR ra.ts < rb.ts
WITH a, count(*) AS purchases_followed, count(DISTINCT b) AS followers
WHERE followers >= $min_followers
RETURN a.id AS user_id, a.name AS name, purchases_followed, followers
ORDER BY purchases_followed DESC, followers DESC, user_id
LIMIT $limit
