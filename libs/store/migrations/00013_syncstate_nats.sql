-- +goose Up
-- A relay-connected shop takes its sync states over NATS (the SHOP stream,
-- applied by its relay): no inbound call to the shop.
ALTER TABLE bindings DROP CONSTRAINT bindings_callback_transport_check,
    ADD CONSTRAINT bindings_callback_transport_check CHECK (callback_transport IN ('http', 'grpc', 'nats'));

-- +goose Down
UPDATE bindings SET callback_transport = 'http' WHERE callback_transport = 'nats';
ALTER TABLE bindings DROP CONSTRAINT bindings_callback_transport_check,
    ADD CONSTRAINT bindings_callback_transport_check CHECK (callback_transport IN ('http', 'grpc'));
