// name: friends_bought_in_category
// description: Products of one category that friends of users bought and those users have not: the best "friends bought" promotions in that category, by users reached.
// param: category_id: string - id of the category
// param: limit: int = 20 - at most this many rows
// group_size: users_reached, friends_who_bought
MATCH (:Category {id: $category_id})<-[:IN_CATEGORY]-(p:Product)<-[:BOUGHT]-(f:User)-[:FRIEND]-(u:User)
WHERE NOT (u)-[:BOUGHT]->(p)
WITH p, count(DISTINCT u) AS users_reached, count(DISTINCT f) AS friends_who_bought
RETURN p.id AS product_id, p.name AS product, users_reached, friends_who_bought
ORDER BY users_reached DESC, friends_who_bought DESC, product_id
LIMIT $limit
