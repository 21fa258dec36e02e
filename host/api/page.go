package api

import (
	"embed"
	"net/http"
)

// ui holds the status page: plain HTML, CSS and JavaScript drawing SVG,
// embedded in the binary so nothing is fetched from elsewhere at run time.
//
//go:embed ui
var ui embed.FS

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	http.ServeFileFS(w, r, ui, "ui/index.html")
}
