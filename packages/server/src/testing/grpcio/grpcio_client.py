"""Drives every RPC of user.v1.UserService and order.v1.OrderService with grpc's C-core (Debian's
python3-grpcio), an implementation that shares no code with the server, and prints one JSON line
per case: {"case": name, "observed": {...}} or {"case": name, "error": "..."}. The test
(packages/server/src/grpcio.test.ts) holds what each case must observe; this script only reports.

    /usr/bin/python3 grpcio_client.py --target 127.0.0.1:PORT --token ADMIN_JWT \
        --descriptors FILE_DESCRIPTOR_SET

The descriptor set comes from Debian's protoc (--include_imports), so no stubs are generated:
message classes are built from it at run time and calls are made by path.
"""

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time
import traceback

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

# A stream that is expected to produce something and does not within this long is a failure, not a
# hang: the whole script must fit in the test's budget.
WAIT_S = 10.0


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True, help="host:port of the server")
    parser.add_argument("--token", required=True, help="an access token with the admin role")
    parser.add_argument("--descriptors", required=True, help="a FileDescriptorSet from protoc")
    parser.add_argument(
        "--only", help="run one case: gzip_response_probe (traced, by gzip_response) or "
        "shutdown_stream (by the test, which stops the server)"
    )
    parser.add_argument("--user-id", type=int, help="the user of gzip_response_probe")
    return parser.parse_args()


class Api:
    """Message classes and callables for both services, from the descriptor set."""

    def __init__(self, descriptors_path, channel):
        with open(descriptors_path, "rb") as f:
            files = descriptor_pb2.FileDescriptorSet.FromString(f.read())
        self.pool = descriptor_pool.DescriptorPool()
        for file in files.file:  # protoc writes them dependencies first
            self.pool.Add(file)
        self.factory = message_factory.MessageFactory(self.pool)
        self.channel = channel
        self.methods = {}
        for name in ("user.v1.UserService", "order.v1.OrderService"):
            service = self.pool.FindServiceByName(name)
            for method in service.methods:
                self.methods[method.name] = method

    def message(self, type_name, **fields):
        cls = self.factory.GetPrototype(self.pool.FindMessageTypeByName(type_name))
        return cls(**fields)

    def enum_name(self, enum_full_name, number):
        return self.pool.FindEnumTypeByName(enum_full_name).values_by_number[number].name

    def enum_value(self, enum_full_name, name):
        return self.pool.FindEnumTypeByName(enum_full_name).values_by_name[name].number

    def stub(self, method_name, channel=None):
        """The C-core multicallable for a method, by its kind."""
        method = self.methods[method_name]
        path = f"/{method.containing_service.full_name}/{method.name}"
        out = self.factory.GetPrototype(method.output_type)
        ch = channel or self.channel
        kind = {
            (False, False): ch.unary_unary,
            (False, True): ch.unary_stream,
            (True, False): ch.stream_unary,
            (True, True): ch.stream_stream,
        }[(method.client_streaming, method.server_streaming)]
        return kind(path, request_serializer=lambda m: m.SerializeToString(),
                    response_deserializer=out.FromString)


def bearer(token):
    return (("authorization", f"Bearer {token}"),)


def code_of(call):
    """A finished call's status as C-core reports it: (code name, details)."""
    return call.code().name, call.details()


def fails_with(fn):
    """Runs a call that must fail; returns {code, message} as C-core saw them."""
    try:
        fn()
    except grpc.RpcError as err:
        return {"code": err.code().name, "message": err.details()}
    return {"code": "OK", "message": ""}


class Reader:
    """Reads a response stream on a thread, so a test can wait for messages with a limit."""

    def __init__(self, call):
        self.call = call
        self.items = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for message in self.call:
                self.items.put(("message", message))
            self.items.put(("end", None))
        except grpc.RpcError as err:
            self.items.put(("error", err))

    def next(self, timeout=WAIT_S):
        """The next message, or raises: the stream ended or nothing came within the limit."""
        try:
            kind, value = self.items.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no message within {timeout} s") from None
        if kind != "message":
            raise AssertionError(f"stream ended instead ({kind}: {value})")
        return value

    def end(self, timeout=WAIT_S):
        """How the stream ended: ("end", None) after OK, or ("error", RpcError)."""
        try:
            return self.items.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the stream did not end within {timeout} s") from None


class Requests:
    """A request iterator for client streams that the test feeds while the call runs."""

    def __init__(self):
        self.queue = queue.Queue()

    def send(self, message):
        self.queue.put(message)

    def close(self):
        self.queue.put(None)

    def __iter__(self):
        while True:
            message = self.queue.get()
            if message is None:
                return
            yield message


class Cases:
    def __init__(self, args):
        self.args = args
        self.channel = grpc.insecure_channel(args.target)
        self.api = Api(args.descriptors, self.channel)
        self.admin = bearer(args.token)
        self.suffix = f"{os.getpid()}{int(time.time() * 1000) % 100000}"
        self.state = {}

    # Helpers ---------------------------------------------------------------------------------

    def user_msg(self, type_name, **fields):
        return self.api.message(f"user.v1.{type_name}", **fields)

    def order_msg(self, type_name, **fields):
        return self.api.message(f"order.v1.{type_name}", **fields)

    def call(self, method, request, metadata=None, **kwargs):
        """A unary call, as the admin unless other metadata (or none, `()`) is given."""
        return self.api.stub(method)(request, metadata=self.admin if metadata is None else metadata,
                                     timeout=WAIT_S, **kwargs)

    def new_user(self, name, tags=()):
        username = f"{name}_{self.suffix}"
        response = self.call("CreateUser", self.user_msg(
            "CreateUserRequest", username=username, email=f"{username}@example.com",
            password="a-long-password-1", tags=list(tags)), metadata=())
        return response.user

    def money(self, minor, currency="EUR"):
        return self.order_msg("Money", currency_code=currency, amount_minor=minor)

    def user_status(self, number):
        return self.api.enum_name("user.v1.UserStatus", number)

    def order_status(self, number):
        return self.api.enum_name("order.v1.OrderStatus", number)

    def event_type(self, number):
        return self.api.enum_name("order.v1.OrderEventType", number)

    # UserService, unary ------------------------------------------------------------------------

    def create_user(self):
        user = self.new_user("alice", tags=["c-core", "python"])
        self.state["alice"] = user
        return {
            "username_is_sent": user.username == f"alice_{self.suffix}",
            "email_is_sent": user.email == f"alice_{self.suffix}@example.com",
            "has_id": user.user_id > 0,
            "status": self.user_status(user.status),
            "tags": list(user.tags),
            "has_created_at": user.created_at.seconds > 0,
        }

    def create_user_already_exists(self):
        alice = self.state["alice"]
        return fails_with(lambda: self.call("CreateUser", self.user_msg(
            "CreateUserRequest", username=alice.username.upper(), email=f"x{alice.email}",
            password="a-long-password-1"), metadata=()))

    def create_user_invalid_argument(self):
        return fails_with(lambda: self.call("CreateUser", self.user_msg(
            "CreateUserRequest", username="a b", email="nope", password="short"), metadata=()))

    def login(self):
        alice = self.state["alice"]
        response = self.call("Login", self.user_msg(
            "LoginRequest", username=alice.username, password="a-long-password-1"), metadata=())
        self.state["alice_login"] = response
        return {
            "token_type": response.token_type,
            "user_id_matches": response.user_id == alice.user_id,
            "has_tokens": bool(response.access_token) and bool(response.refresh_token),
            "expiry_ordered": response.access_token_expires_at.seconds
            < response.refresh_token_expires_at.seconds,
        }

    def login_wrong_password(self):
        alice = self.state["alice"]
        return fails_with(lambda: self.call("Login", self.user_msg(
            "LoginRequest", username=alice.username, password="not-the-password"), metadata=()))

    def refresh_token(self):
        first = self.state["alice_login"]
        request = self.user_msg("RefreshTokenRequest", refresh_token=first.refresh_token)
        rotated = self.call("RefreshToken", request, metadata=())
        self.state["alice_token"] = rotated.access_token
        # Reusing the rotated-out refresh token revokes the whole login; do it on a second login
        # so alice's current access token stays valid for the cases that follow.
        second = self.call("Login", self.user_msg(
            "LoginRequest", username=self.state["alice"].username,
            password="a-long-password-1"), metadata=())
        again = self.user_msg("RefreshTokenRequest", refresh_token=second.refresh_token)
        self.call("RefreshToken", again, metadata=())
        reuse = fails_with(lambda: self.call("RefreshToken", again, metadata=()))
        return {
            "rotated": rotated.refresh_token != first.refresh_token and bool(rotated.refresh_token),
            "user_id_matches": rotated.user_id == self.state["alice"].user_id,
            "reuse": reuse,
        }

    def get_user_with_fields(self):
        alice = self.state["alice"]
        response = self.call("GetUser", self.user_msg(
            "GetUserRequest", user_id=alice.user_id, fields=["username", "tags"]))
        user = response.user
        return {
            "username_matches": user.username == alice.username,
            "tags": list(user.tags),
            "email": user.email,
            "status": self.user_status(user.status),
        }

    def get_user_as_owner(self):
        alice = self.state["alice"]
        response = self.call("GetUser", self.user_msg("GetUserRequest", user_id=alice.user_id),
                             metadata=bearer(self.state["alice_token"]))
        return {"email_matches": response.user.email == alice.email}

    def get_user_not_found(self):
        return fails_with(lambda: self.call("GetUser", self.user_msg(
            "GetUserRequest", user_id=9_000_000_000)))

    def get_user_unauthenticated(self):
        alice = self.state["alice"]
        return fails_with(lambda: self.call("GetUser", self.user_msg(
            "GetUserRequest", user_id=alice.user_id), metadata=()))

    def get_user_permission_denied(self):
        bob = self.new_user("bob")
        self.state["bob"] = bob
        return fails_with(lambda: self.call("GetUser", self.user_msg(
            "GetUserRequest", user_id=bob.user_id), metadata=bearer(self.state["alice_token"])))

    def list_users_paging(self):
        created = {self.new_user(f"page{i}").user_id for i in range(3)}
        created |= {self.state["alice"].user_id, self.state["bob"].user_id}
        seen, pages, token = [], 0, ""
        while True:
            response = self.call("ListUsers", self.user_msg(
                "ListUsersRequest", page_size=2, page_token=token))
            pages += 1
            seen.extend(u.user_id for u in response.users)
            if len(response.users) > 2:
                raise AssertionError(f"page of {len(response.users)} for page_size 2")
            token = response.next_page_token
            if not token or pages > 50:
                break
        return {
            "pages_at_least_3": pages >= 3,
            "no_duplicates": len(seen) == len(set(seen)),
            "all_created_listed": created <= set(seen),
        }

    def unknown_method(self):
        unknown_method = self.channel.unary_unary("/user.v1.UserService/Nope")
        unknown_service = self.channel.unary_unary("/nope.v1.NopeService/Nope")
        return {
            "method": fails_with(lambda: unknown_method(b"", metadata=self.admin, timeout=WAIT_S)),
            "service": fails_with(lambda: unknown_service(b"", metadata=self.admin,
                                                          timeout=WAIT_S)),
        }

    def message_too_large(self):
        """A request over the server's 4 MiB limit, unary and in a client stream, is refused with
        RESOURCE_EXHAUSTED while C-core is still sending it; the connection keeps serving."""
        alice = self.state["alice"]
        huge = "p" * (5 * 1024 * 1024)
        unary = fails_with(lambda: self.call("CreateUser", self.user_msg(
            "CreateUserRequest", username="huge", email="huge@example.com", password=huge),
            metadata=()))
        update = self.user_msg("UpdateUserRequest", user_id=alice.user_id,
                               user=self.user_msg("User", username=huge))
        stream = fails_with(lambda: self.api.stub("BatchUpdateUsers")(
            iter([update]), metadata=self.admin, timeout=WAIT_S))
        after = self.call("GetUser", self.user_msg("GetUserRequest", user_id=alice.user_id))
        return {
            "unary": unary,
            "client_stream": stream,
            "served_after": after.user.user_id == alice.user_id,
        }

    def concurrent_calls(self):
        """100 calls at once on one channel (one HTTP/2 connection), each answered for itself."""
        users = [self.state["alice"], self.state["bob"]]
        futures = [
            self.api.stub("GetUser").future(
                self.user_msg("GetUserRequest", user_id=users[i % 2].user_id),
                metadata=self.admin + (("x-request-id", f"concurrent-{i}"),), timeout=WAIT_S)
            for i in range(100)
        ]
        matched = 0
        for i, future in enumerate(futures):
            response = future.result()
            request_id = dict(future.initial_metadata()).get("x-request-id")
            if response.user.user_id == users[i % 2].user_id and request_id == f"concurrent-{i}":
                matched += 1
        return {"answered_for_itself": matched}

    # UserService, streaming --------------------------------------------------------------------

    def batch_update_users(self):
        alice, bob = self.state["alice"], self.state["bob"]
        mask = self.api.message("google.protobuf.FieldMask", paths=["tags"])
        updates = [
            self.user_msg("UpdateUserRequest", user_id=alice.user_id,
                          user=self.user_msg("User", tags=["batched"]), update_mask=mask),
            self.user_msg("UpdateUserRequest", user_id=9_000_000_001,
                          user=self.user_msg("User", tags=["ghost"]), update_mask=mask),
            self.user_msg("UpdateUserRequest", user_id=bob.user_id,
                          user=self.user_msg("User", tags=["batched-too"]), update_mask=mask),
        ]
        response = self.api.stub("BatchUpdateUsers")(iter(updates), metadata=self.admin,
                                                     timeout=WAIT_S)
        after = self.call("GetUser", self.user_msg("GetUserRequest", user_id=alice.user_id))
        return {
            "updated_count": response.updated_count,
            "errors": [e.replace("9000000001", "N") for e in response.errors],
            "alice_tags": list(after.user.tags),
        }

    def stream_user_activities(self):
        """History first, then a live activity caused while the stream is open."""
        alice = self.state["alice"]
        call = self.api.stub("StreamUserActivities")(
            self.user_msg("StreamUserActivitiesRequest", user_id=alice.user_id),
            metadata=self.admin)
        reader = Reader(call)
        history = []
        # alice so far: created, logged in (twice), token refreshes are not activities, updated.
        for _ in range(4):
            history.append(reader.next().action)
        mask = self.api.message("google.protobuf.FieldMask", paths=["tags"])
        update = self.user_msg("UpdateUserRequest", user_id=alice.user_id,
                               user=self.user_msg("User", tags=["live"]), update_mask=mask)
        self.api.stub("BatchUpdateUsers")(iter([update]), metadata=self.admin, timeout=WAIT_S)
        live = reader.next()
        call.cancel()
        kind, err = reader.end()
        return {
            "history": history,
            "live_action": live.action,
            "live_user_matches": live.user_id == alice.user_id,
            "ended": kind,
            "code": err.code().name if err is not None else "OK",
        }

    def sync_user_status(self):
        """A follower sees its current status, then an admin's change from another stream."""
        carol = self.new_user("carol")
        follower_requests, setter_requests = Requests(), Requests()
        follower = self.api.stub("SyncUserStatus")(iter(follower_requests), metadata=self.admin)
        setter = self.api.stub("SyncUserStatus")(iter(setter_requests), metadata=self.admin)
        follow = Reader(follower)
        set_reader = Reader(setter)
        follower_requests.send(self.user_msg("UserStatusUpdate", user_id=carol.user_id))
        current = follow.next()
        inactive = self.api.enum_value("user.v1.UserStatus", "USER_STATUS_INACTIVE")
        setter_requests.send(self.user_msg("UserStatusUpdate", user_id=carol.user_id,
                                           status=inactive))
        changed = follow.next()
        setter_requests.close()
        follower_requests.close()
        setter_end, _ = set_reader.end()
        follower_end, _ = follow.end()
        stored = self.call("GetUser", self.user_msg("GetUserRequest", user_id=carol.user_id))
        return {
            "current": self.user_status(current.status),
            "changed": self.user_status(changed.status),
            "changed_user_matches": changed.user_id == carol.user_id,
            "setter_ended": setter_end,
            "follower_ended": follower_end,
            "stored": self.user_status(stored.user.status),
        }

    # OrderService ------------------------------------------------------------------------------

    def create_order(self):
        alice = self.state["alice"]
        items = [
            self.order_msg("LineItem", sku="SKU-1", name="Widget", quantity=2,
                           unit_price=self.money(1250)),
            self.order_msg("LineItem", sku="SKU-2", name="Gadget", quantity=1,
                           unit_price=self.money(999)),
        ]
        request = self.order_msg("CreateOrderRequest", user_id=alice.user_id, items=items,
                                 idempotency_key=f"create-{self.suffix}")
        order = self.call("CreateOrder", request).order
        retry = self.call("CreateOrder", request).order
        second = self.call("CreateOrder", self.order_msg(
            "CreateOrderRequest", user_id=alice.user_id, items=items[:1])).order
        self.state["order"], self.state["second_order"] = order, second
        return {
            "status": self.order_status(order.status),
            "total": [order.total.currency_code, order.total.amount_minor],
            "line_totals": [i.line_total.amount_minor for i in order.items],
            "user_id_matches": order.user_id == alice.user_id,
            "retry_same_order": retry.order_id == order.order_id,
        }

    def create_order_conflicting_key(self):
        alice = self.state["alice"]
        return fails_with(lambda: self.call("CreateOrder", self.order_msg(
            "CreateOrderRequest", user_id=alice.user_id, idempotency_key=f"create-{self.suffix}",
            items=[self.order_msg("LineItem", sku="SKU-9", name="Other", quantity=1,
                                  unit_price=self.money(1))])))

    def get_order(self):
        order = self.state["order"]
        got = self.call("GetOrder", self.order_msg("GetOrderRequest", order_id=order.order_id),
                        metadata=bearer(self.state["alice_token"])).order
        return {
            "same_order": got.order_id == order.order_id,
            "skus": [i.sku for i in got.items],
            "total_minor": got.total.amount_minor,
        }

    def get_order_not_found(self):
        return fails_with(lambda: self.call("GetOrder", self.order_msg(
            "GetOrderRequest", order_id=9_000_000_000)))

    def list_orders(self):
        alice = self.state["alice"]
        first = self.call("ListOrders", self.order_msg(
            "ListOrdersRequest", user_id=alice.user_id, page_size=1))
        rest = self.call("ListOrders", self.order_msg(
            "ListOrdersRequest", user_id=alice.user_id, page_size=1,
            page_token=first.next_page_token))
        ids = {o.order_id for o in list(first.orders) + list(rest.orders)}
        expected = {self.state["order"].order_id, self.state["second_order"].order_id}
        return {
            "page_sizes": [len(first.orders), len(rest.orders)],
            "both_orders": ids == expected,
            "last_page": rest.next_page_token == "",
        }

    def cancel_order(self):
        second = self.state["second_order"]
        order = self.call("CancelOrder", self.order_msg(
            "CancelOrderRequest", order_id=second.order_id, reason="changed my mind")).order
        again = fails_with(lambda: self.call("ShipOrder", self.order_msg(
            "ShipOrderRequest", order_id=second.order_id, carrier="DHL",
            tracking_number="JJD1")))
        return {
            "status": self.order_status(order.status),
            "cancel_reason": order.cancel_reason,
            "ship_after_cancel": {"code": again["code"],
                                  "names_status": "CANCELLED" in again["message"]},
        }

    def pay_order_wrong_amount(self):
        order = self.state["order"]
        return fails_with(lambda: self.call("PayOrder", self.order_msg(
            "PayOrderRequest", order_id=order.order_id, amount=self.money(1),
            idempotency_key=f"pay-{self.suffix}")))

    def pay_order(self):
        order = self.state["order"]
        request = self.order_msg("PayOrderRequest", order_id=order.order_id,
                                 amount=self.money(3499), idempotency_key=f"pay-{self.suffix}")
        response = self.call("PayOrder", request)
        retry = self.call("PayOrder", request)
        return {
            "status": self.order_status(response.order.status),
            "paid": [response.payment.amount.currency_code, response.payment.amount.amount_minor],
            "retry_same_payment": retry.payment.payment_id == response.payment.payment_id,
        }

    def ship_order(self):
        order = self.state["order"]
        shipped = self.call("ShipOrder", self.order_msg(
            "ShipOrderRequest", order_id=order.order_id, carrier="DHL",
            tracking_number="JJD0001")).order
        return {
            "status": self.order_status(shipped.status),
            "carrier": shipped.shipment.carrier,
            "tracking_number": shipped.shipment.tracking_number,
        }

    def track_order_and_update_shipment(self):
        """TrackOrder replays history, then sees UpdateShipment's checkpoints live and ends."""
        order = self.state["order"]
        track = self.api.stub("TrackOrder")(
            self.order_msg("TrackOrderRequest", order_id=order.order_id), metadata=self.admin)
        reader = Reader(track)
        history = [self.event_type(reader.next().event.type) for _ in range(3)]
        checkpoint = self.api.message
        checkpoint_status = "order.v1.CheckpointStatus"
        in_transit = self.api.enum_value(checkpoint_status, "CHECKPOINT_STATUS_IN_TRANSIT")
        delivered = self.api.enum_value(checkpoint_status, "CHECKPOINT_STATUS_DELIVERED")
        updates = Requests()
        shipment = self.api.stub("UpdateShipment").future(iter(updates), metadata=self.admin,
                                                          timeout=WAIT_S)
        updates.send(self.order_msg("UpdateShipmentRequest", order_id=order.order_id,
                                    checkpoint=checkpoint("order.v1.Checkpoint", location="Leipzig",
                                                          status=in_transit, note="hub")))
        # The live event arrives while the client stream is still open.
        live = reader.next().event
        updates.send(self.order_msg("UpdateShipmentRequest", order_id=9_000_000_002,
                                    checkpoint=checkpoint("order.v1.Checkpoint", location="Nowhere",
                                                          status=in_transit)))
        updates.send(self.order_msg("UpdateShipmentRequest", order_id=order.order_id,
                                    checkpoint=checkpoint("order.v1.Checkpoint", location="Berlin",
                                                          status=delivered)))
        updates.close()
        result = shipment.result(timeout=WAIT_S)
        rest = []
        while True:
            kind, value = reader.items.get(timeout=WAIT_S)
            if kind != "message":
                break
            rest.append(self.event_type(value.event.type))
        return {
            "history": history,
            "live": [self.event_type(live.type), live.checkpoint.location],
            "after": rest,
            "stream_end": kind,
            "applied_count": result.applied_count,
            "errors": [e.replace("9000000002", "N") for e in result.errors],
            "delivered_is_order": list(result.delivered_order_ids) == [order.order_id],
        }

    # Deadlines, cancellation, metadata, compression --------------------------------------------

    def deadline_on_live_stream(self):
        """A live stream with a short deadline ends with DEADLINE_EXCEEDED after its history."""
        alice = self.state["alice"]
        call = self.api.stub("StreamUserActivities")(
            self.user_msg("StreamUserActivitiesRequest", user_id=alice.user_id),
            metadata=self.admin + (("x-request-id", f"deadline-{self.suffix}"),), timeout=1.0)
        reader = Reader(call)
        first = reader.next()
        kind, err = drain(reader)
        return {"first_action": first.action, "ended": kind, "code": err.code().name}

    def deadline_enforced_by_server(self):
        """With C-core's own deadline checking off, only the server can end the call on time:
        this shows that it reads grpc-timeout and ends the stream with DEADLINE_EXCEEDED."""
        channel = grpc.insecure_channel(self.args.target,
                                        options=[("grpc.enable_deadline_checking", 0)])
        try:
            alice = self.state["alice"]
            call = self.api.stub("StreamUserActivities", channel)(
                self.user_msg("StreamUserActivitiesRequest", user_id=alice.user_id),
                metadata=self.admin + (("x-request-id", f"server-deadline-{self.suffix}"),),
                timeout=1.0)
            reader = Reader(call)
            reader.next()
            kind, err = drain(reader)
            return {"ended": kind, "code": err.code().name if err else "OK"}
        finally:
            channel.close()

    def cancel_live_stream(self):
        alice = self.state["alice"]
        call = self.api.stub("StreamUserActivities")(
            self.user_msg("StreamUserActivitiesRequest", user_id=alice.user_id),
            metadata=self.admin + (("x-request-id", f"cancel-{self.suffix}"),))
        reader = Reader(call)
        reader.next()
        reader.next()
        call.cancel()
        kind, err = drain(reader)
        # The same channel (one HTTP/2 connection) keeps serving.
        after = self.call("GetUser", self.user_msg("GetUserRequest", user_id=alice.user_id))
        return {
            "ended": kind,
            "code": err.code().name,
            "served_after": after.user.user_id == alice.user_id,
        }

    def metadata_both_ways(self):
        alice = self.state["alice"]
        request_id = f"grpcio-{self.suffix}"
        binary = bytes([0, 1, 2, 0xFE, 0xFF])
        response, call = self.api.stub("GetUser").with_call(
            self.user_msg("GetUserRequest", user_id=alice.user_id),
            metadata=self.admin + (("x-request-id", request_id), ("x-trace-context-bin", binary)),
            timeout=WAIT_S)
        initial = dict(call.initial_metadata())
        failed = {}
        try:
            self.api.stub("GetUser")(self.user_msg("GetUserRequest", user_id=9_000_000_000),
                                     metadata=self.admin + (("x-request-id", request_id),),
                                     timeout=WAIT_S)
        except grpc.RpcError as err:
            failed = {k: v for k, v in list(err.initial_metadata()) + list(err.trailing_metadata())}
        return {
            "code": call.code().name,
            "user_matches": response.user.user_id == alice.user_id,
            "request_id_in_headers": initial.get("x-request-id") == request_id,
            "request_id_on_error": failed.get("x-request-id") == request_id,
        }

    def gzip_request(self):
        """Requests compressed with gzip, for a unary call and a client stream."""
        alice = self.state["alice"]
        response = self.api.stub("GetUser")(
            self.user_msg("GetUserRequest", user_id=alice.user_id), metadata=self.admin,
            timeout=WAIT_S, compression=grpc.Compression.Gzip)
        mask = self.api.message("google.protobuf.FieldMask", paths=["tags"])
        # 32 tags of 60 characters (the most a user may have): about 2 KiB, compressible.
        big_tags = [f"gzip-{i:02d}-" + "abcdefghij" * 5 + "xyz" for i in range(32)]
        batch = self.api.stub("BatchUpdateUsers")(
            iter([self.user_msg("UpdateUserRequest", user_id=alice.user_id,
                                user=self.user_msg("User", tags=big_tags), update_mask=mask)]),
            metadata=self.admin, timeout=WAIT_S, compression=grpc.Compression.Gzip)
        after = self.call("GetUser", self.user_msg("GetUserRequest", user_id=alice.user_id))
        return {
            "user_matches": response.user.user_id == alice.user_id,
            "updated_count": batch.updated_count,
            "errors": list(batch.errors),
            "tags_stored": list(after.user.tags) == big_tags,
        }

    def gzip_response_probe(self):
        """(Run alone, traced, by gzip_response.) alice, with gzip_request's 2 KiB of tags."""
        response = self.call("GetUser", self.user_msg("GetUserRequest", user_id=self.args.user_id))
        return {"tags": len(response.user.tags), "over_1_kib": response.ByteSize() > 1024}

    def gzip_response(self):
        """The server gzips a large answer and C-core decodes it. Seen in C-core's own traces: the
        bytes it read (GRPC_TRACE=tcp), parsed here into HTTP/2 frames, and what its compression
        code said (GRPC_TRACE=compression)."""
        env = dict(os.environ, GRPC_TRACE="tcp,compression", GRPC_VERBOSITY="DEBUG")
        probe = subprocess.run(
            [sys.executable, __file__, "--target", self.args.target, "--token", self.args.token,
             "--descriptors", self.args.descriptors, "--only", "gzip_response_probe",
             "--user-id", str(self.state["alice"].user_id)],
            env=env, capture_output=True, text=True, timeout=WAIT_S * 2)
        lines = [json.loads(l) for l in probe.stdout.splitlines() if l.startswith("{")]
        received = bytearray()
        for line in probe.stderr.splitlines():
            if "READ DATA: " in line:
                hex_part = line.split("READ DATA: ", 1)[1].split("'", 1)[0]
                received += bytes.fromhex(hex_part)
        return {
            "probe": lines[0] if lines else probe.stderr[-2000:],
            "grpc_message_flags": [data[0] for data in data_frames(received) if data],
            "compression_complaints": [
                l.split("] ", 1)[-1].strip() for l in probe.stderr.splitlines()
                if "compression" in l.lower() and l.startswith("E")
            ],
        }


    def shutdown_stream(self):
        """(Run alone.) A live stream open while the server shuts down: prints a "ready" line once
        the stream is live, for the test to send SIGTERM, then how it ended."""
        user = self.new_user("shutdown")
        call = self.api.stub("StreamUserActivities")(
            self.user_msg("StreamUserActivitiesRequest", user_id=user.user_id),
            metadata=self.admin)
        reader = Reader(call)
        reader.next()
        print(json.dumps({"ready": True}), flush=True)
        kind, err = drain(reader)
        return {
            "ended": kind,
            "code": err.code().name if err else "OK",
            "message": err.details() if err else "",
        }

def data_frames(received):
    """The payloads of the HTTP/2 DATA frames in bytes a client read (the server sends no preface
    besides its SETTINGS frame, which is parsed like any other). A gRPC message starts a DATA frame
    here: its first byte is the message's compressed flag."""
    frames, offset = [], 0
    while offset + 9 <= len(received):
        length = int.from_bytes(received[offset:offset + 3], "big")
        frame_type, flags = received[offset + 3], received[offset + 4]
        payload = received[offset + 9:offset + 9 + length]
        if frame_type == 0:  # DATA
            if flags & 0x8:  # PADDED
                payload = payload[1:len(payload) - payload[0]]
            frames.append(bytes(payload))
        offset += 9 + length
    return frames


def drain(reader):
    """Skips the messages still coming and returns how the stream ended."""
    while True:
        kind, value = reader.end()
        if kind != "message":
            return kind, value


ORDER = [
    "create_user",
    "create_user_already_exists",
    "create_user_invalid_argument",
    "login",
    "login_wrong_password",
    "refresh_token",
    "get_user_with_fields",
    "get_user_as_owner",
    "get_user_not_found",
    "get_user_unauthenticated",
    "get_user_permission_denied",
    "list_users_paging",
    "unknown_method",
    "message_too_large",
    "concurrent_calls",
    "batch_update_users",
    "stream_user_activities",
    "sync_user_status",
    "create_order",
    "create_order_conflicting_key",
    "get_order",
    "get_order_not_found",
    "list_orders",
    "cancel_order",
    "pay_order_wrong_amount",
    "pay_order",
    "ship_order",
    "track_order_and_update_shipment",
    "deadline_on_live_stream",
    "deadline_enforced_by_server",
    "cancel_live_stream",
    "metadata_both_ways",
    "gzip_request",
    "gzip_response",
]


def main():
    args = parse_args()
    cases = Cases(args)
    for name in [args.only] if args.only else ORDER:
        try:
            line = {"case": name, "observed": getattr(cases, name)()}
        except Exception as err:  # one case failing must not hide the others
            detail = err.details() if isinstance(err, grpc.RpcError) else str(err)
            code = err.code().name if isinstance(err, grpc.RpcError) else type(err).__name__
            line = {"case": name, "error": f"{code}: {detail}",
                    "trace": traceback.format_exc(limit=3)[-1500:]}
        print(json.dumps(line), flush=True)
    cases.channel.close()


if __name__ == "__main__":
    main()
