# One image recipe for every Ledger binary: `--build-arg CMD=./services/ingest/cmd/ingest`.
# docker-compose.yml builds each service and simulator from it.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY . .
ARG CMD
RUN test -n "$CMD" && CGO_ENABLED=0 go build -trimpath -o /out/app "$CMD"

FROM gcr.io/distroless/static-debian12:debug-nonroot
COPY --from=build /out/app /app
USER nonroot
ENTRYPOINT ["/app"]
