# fhirgate and a geth built from the go-ethereum version in go.mod, in one
# small runtime image (docker-compose.yml runs both from it).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/gateway ./cmd/gateway
# geth's own dependencies are not in fhirgate's go.sum: build it in a
# throwaway module pinned to the same go-ethereum version.
RUN version="$(go list -m -f '{{.Version}}' github.com/ethereum/go-ethereum)" \
 && mkdir /geth && cd /geth \
 && go mod init gethbuild \
 && go get "github.com/ethereum/go-ethereum/cmd/geth@${version}" \
 && CGO_ENABLED=0 go build -trimpath -o /out/geth github.com/ethereum/go-ethereum/cmd/geth

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/fhirgate fhirgate \
 && mkdir -p /var/lib/fhirgate /var/lib/geth && chown fhirgate /var/lib/fhirgate /var/lib/geth
COPY --from=build /out/gateway /out/geth /usr/local/bin/
USER fhirgate
EXPOSE 8080
ENTRYPOINT ["gateway"]
CMD ["serve", "--addr", "0.0.0.0:8080", "--data", "/var/lib/fhirgate"]
