// name: recommendation_coverage_by_category
// description: For each category, how many of its products appear in published recommendations (RECOMMENDED edges from `graphrec publish`), and in how many recommendation slots.
// param: model: string = null - only this model's recommendations (default: any)
// param: min_products: int = 1 - only categories with at least this many products
// param: limit: int = 50 - at most this many rows
// group_size: none - counts products and recommendation slots, never people
MATCH (c:Category)<-[:IN_CATEGORY]-(p:Product)
WITH c, count(p) AS products
WHERE products >= $min_products
OPTIONAL MATCH (c)<-[:IN_CATEGORY]-(p:Product)<-[r:RECOMMENDED]-(:User)
WHERE $model IS NULL OR r.model = $model
WITH c, products, count(DISTINCT p) AS recommended, count(r) AS slots
RETURN c.id AS category_id, c.name AS category, products, recommended,
       round(toFloat(recommended) / products, 4) AS coverage, slots
ORDER BY slots DESC, coverage DESC, category_id
LIMIT $limit
