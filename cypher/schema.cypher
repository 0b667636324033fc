// GraphRec graph schema, version 1. Generated from graphrec/schema.py; do not edit by hand.
// Nodes: :User {id, name}, :Product {id, name, price, brand}, :Category {id, name}, :Campaign {id, name, salt, created_at, start, end, offer_kind, offer_value, policy, audience_size, exclude_buyers, control_fraction, cap_per_user_per_day, category_id, products, promoted, treatment, control}
// Relationships: (:User)-[:BOUGHT {ts, weight, split}]->(:Product), (:User)-[:VIEWED {ts, weight, split}]->(:Product), (:User)-[:RATED {ts, weight, split}]->(:Product), (:Product)-[:IN_CATEGORY {primary}]->(:Category), (:Category)-[:SUBCATEGORY_OF]->(:Category), (:User)-[:FRIEND]->(:User), (:User)-[:FOLLOWS]->(:User), (:User)-[:RECOMMENDED {score, rank, model, at}]->(:Product), (:Campaign)-[:PROMOTES]->(:Product|Category), (:User)-[:ASSIGNED {variant, at}]->(:Campaign)
CREATE CONSTRAINT user_id_unique IF NOT EXISTS FOR (n:User) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT product_id_unique IF NOT EXISTS FOR (n:Product) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT category_id_unique IF NOT EXISTS FOR (n:Category) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT campaign_id_unique IF NOT EXISTS FOR (n:Campaign) REQUIRE n.id IS UNIQUE;
CREATE INDEX product_name IF NOT EXISTS FOR (n:Product) ON (n.name);
CREATE INDEX category_name IF NOT EXISTS FOR (n:Category) ON (n.name);
CREATE INDEX bought_split IF NOT EXISTS FOR ()-[r:BOUGHT]-() ON (r.split);
CREATE INDEX recommended_model IF NOT EXISTS FOR ()-[r:RECOMMENDED]-() ON (r.model);
