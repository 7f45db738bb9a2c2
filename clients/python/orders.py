"""idalloc from SQLAlchemy (Debian's python3-sqlalchemy, psycopg2).

The README's "Using it from your application" shows this file's snippets;
t/023_sqlalchemy.pl runs it against a throwaway cluster:

    /usr/bin/python3 clients/python/orders.py postgresql+psycopg2:///postgres?host=...&port=...

It prints what it did, one fact per line, for the test to check:
    sql <statement>          every INSERT and idalloc call SQLAlchemy sent
    one <id>                 an order inserted with its server default
    batch <start> <end>      the range of one bulk insert (hi/lo)
"""
import sys

from sqlalchemy import BigInteger, Column, String, create_engine, event, insert, text
from sqlalchemy.orm import Session, declarative_base

Base = declarative_base()


class Order(Base):
    __tablename__ = "orders"
    # the ID comes from the server: INSERT ... RETURNING orders.id
    id = Column(BigInteger, primary_key=True,
                server_default=text("idalloc_one('orders')"))
    item = Column(String, nullable=False)


def reserve_ids(session, allocator, n):
    """hi/lo: one idalloc_batch call reserves the IDs of a whole bulk insert."""
    start, end = session.execute(
        text("SELECT start_id, end_id FROM idalloc_batch(:allocator, :n)"),
        {"allocator": allocator, "n": n},
    ).one()
    return range(start, end)


def main(url):
    engine = create_engine(url)

    @event.listens_for(engine, "before_cursor_execute")
    def log_sql(conn, cursor, statement, parameters, context, executemany):
        if "INSERT" in statement or "idalloc_" in statement:
            print("sql", " ".join(statement.split()), flush=True)

    # a migration: may run again (if_not_exists)
    with engine.begin() as conn:
        conn.execute(text("SELECT idalloc_create('orders', if_not_exists => true)"))
    Base.metadata.create_all(engine)

    with Session(engine) as session:
        for n in range(20):
            order = Order(item=f"order {n}")
            session.add(order)
            session.flush()          # INSERT ... RETURNING: the ID is known now
            print("one", order.id, flush=True)
        session.commit()

    with Session(engine) as session:
        for _ in range(3):
            ids = reserve_ids(session, "orders", 500)
            session.execute(insert(Order), [{"id": i, "item": f"bulk {i}"} for i in ids])
            print("batch", ids.start, ids.stop, flush=True)
        session.commit()


if __name__ == "__main__":
    main(sys.argv[1])
