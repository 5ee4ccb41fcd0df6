// A POLKU ingestor plugin in Go: agents send raw CSV with source "csv", and each row becomes an
// event whose metadata holds the row's columns, keyed by the header row.
//
//	examples/plugins/go/build.sh                               # generates the stubs, builds
//	examples/plugins/go/.build/csv-ingestor --port 9002
//
// The gateway calls it over gRPC (polku.v1.IngestorPlugin in proto/polku/v1/plugin.proto).
// Ingest reads the batch as RFC 4180 CSV: the first row names the columns; every further row is
// an event of type "csv.row" with the columns as metadata and the id from an "id" column when
// there is one, else "csv-<n>" (n counts data rows from 1, per batch). A row with a different
// number of fields than the header, broken quoting or bytes that are not UTF-8 is reported as an
// IngestError at the byte offset where the row starts; the other rows are still returned.
//
// SIGTERM or SIGINT stops it gracefully: in-flight calls finish, then it exits 0.
package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"unicode/utf8"

	eventv1 "github.com/polku/polku/gen/go/polku/event/v1"
	polkuv1 "github.com/polku/polku/gen/go/polku/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

const version = "1.0.0"

type csvIngestor struct {
	polkuv1.UnimplementedIngestorPluginServer
}

func (p *csvIngestor) Info(ctx context.Context, _ *emptypb.Empty) (*polkuv1.PluginInfo, error) {
	return &polkuv1.PluginInfo{
		Name:        "csv-ingestor",
		Version:     version,
		Type:        polkuv1.PluginType_PLUGIN_TYPE_INGESTOR,
		Description: "One event per CSV row, columns as metadata",
		Sources:     []string{"csv"}, // raw batches with source "csv" come here
	}, nil
}

func (p *csvIngestor) Health(ctx context.Context, _ *emptypb.Empty) (*polkuv1.PluginHealthResponse, error) {
	return &polkuv1.PluginHealthResponse{Healthy: true, Message: "ok"}, nil
}

func (p *csvIngestor) Ingest(ctx context.Context, req *polkuv1.IngestRequest) (*polkuv1.IngestResponse, error) {
	events, problems := parseCSV(req.Data, req.Source)
	return &polkuv1.IngestResponse{Events: events, Errors: problems}, nil
}

// parseCSV turns a CSV batch into events and one IngestError per row it cannot use.
func parseCSV(data []byte, source string) ([]*eventv1.Event, []*polkuv1.IngestError) {
	var events []*eventv1.Event
	var problems []*polkuv1.IngestError
	reader := csv.NewReader(bytes.NewReader(data))
	reader.FieldsPerRecord = -1 // rows of the wrong width are reported here, not by the reader
	reader.ReuseRecord = false

	headers, err := reader.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil // an empty batch: nothing to do
	}
	if err != nil || !allUTF8(headers) {
		detail := "not UTF-8"
		if err != nil {
			detail = err.Error()
		}
		return nil, []*polkuv1.IngestError{{Message: "cannot read the header row", Details: detail, Offset: 0}}
	}
	idColumn := -1
	for i, h := range headers {
		if h == "id" {
			idColumn = i
			break
		}
	}

	for row := 1; ; row++ {
		start := reader.InputOffset() // where this row begins (Go 1.19+)
		fields, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var parseErr *csv.ParseError
		switch {
		case errors.As(err, &parseErr):
			problems = append(problems, &polkuv1.IngestError{
				Message: fmt.Sprintf("row %d: %v", row, parseErr.Err),
				Details: fmt.Sprintf("line %d", parseErr.StartLine),
				Offset:  start,
			})
			if reader.InputOffset() == start {
				return events, problems // no progress: the rest cannot be read
			}
			continue
		case err != nil:
			problems = append(problems, &polkuv1.IngestError{Message: fmt.Sprintf("row %d: %v", row, err), Offset: start})
			return events, problems
		case len(fields) != len(headers):
			problems = append(problems, &polkuv1.IngestError{
				Message: fmt.Sprintf("row %d has %d fields, the header has %d", row, len(fields), len(headers)),
				Details: fmt.Sprintf("line %d", lineOf(reader)),
				Offset:  start,
			})
			continue
		case !allUTF8(fields):
			// Protobuf strings must be UTF-8: such a row cannot become metadata.
			problems = append(problems, &polkuv1.IngestError{
				Message: fmt.Sprintf("row %d is not valid UTF-8", row),
				Details: fmt.Sprintf("line %d", lineOf(reader)),
				Offset:  start,
			})
			continue
		}
		metadata := make(map[string]string, len(headers))
		for i, h := range headers {
			metadata[h] = fields[i]
		}
		id := "csv-" + strconv.Itoa(row)
		if idColumn >= 0 && fields[idColumn] != "" {
			id = fields[idColumn]
		}
		// No timestamp: the gateway stamps the time it received the batch.
		events = append(events, &eventv1.Event{Id: id, Source: source, EventType: "csv.row", Metadata: metadata})
	}
	return events, problems
}

func lineOf(r *csv.Reader) int {
	line, _ := r.FieldPos(0)
	return line
}

func allUTF8(fields []string) bool {
	for _, f := range fields {
		if !utf8.ValidString(f) {
			return false
		}
	}
	return true
}

func main() {
	port := flag.Int("port", 9002, "port to listen on; 0 picks a free one")
	host := flag.String("host", "0.0.0.0", "address to listen on")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("csv-ingestor: ")
	if *port < 0 || *port > 65535 {
		log.Fatalf("--port must be 0-65535, got %d", *port)
	}

	lis, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		log.Fatalf("cannot listen: %v", err)
	}
	server := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	polkuv1.RegisterIngestorPluginServer(server, &csvIngestor{})

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		log.Printf("stopping")
		server.GracefulStop() // in-flight calls finish first
	}()

	log.Printf("listening on %s for source %q", lis.Addr(), "csv")
	if err := server.Serve(lis); err != nil {
		log.Fatalf("serve: %v", err)
	}
	log.Printf("stopped")
}
