// name: user_neighbourhood
// description: A user's 1- and 2-hop neighbourhood, summarised: how many nodes of each label are reached through which relationship types, with a few names; people counts the other users a row reaches, through_people the users it passes through (null when none).
// param: user_id: string - id of the user
// param: sample: int = 5 - names listed per row
// group_size: people, through_people
MATCH (u:User {id: $user_id})
CALL (u) {
  MATCH (u)-[r]-(n)
  RETURN 1 AS hops, type(r) AS via, labels(n)[0] AS label, n, null AS m
  UNION
  MATCH (u)-[r1]-(m)-[r2]-(n)
  WHERE n <> u
  RETURN 2 AS hops, type(r1) + '/' + type(r2) AS via, labels(n)[0] AS label, n, m
}
WITH hops, via, label, n, m ORDER BY n.id
WITH hops, via, label, count(DISTINCT n) AS nodes, collect(DISTINCT coalesce(n.name, n.id)) AS names,
     count(DISTINCT CASE WHEN n:User THEN n END) AS reached, count(DISTINCT CASE WHEN m:User THEN m END) AS through
RETURN hops, via, label, nodes, names[..$sample] AS sample,
       CASE WHEN reached > 0 THEN reached END AS people, CASE WHEN through > 0 THEN through END AS through_people
ORDER BY hops, nodes DESC, via, label
