package rest

import (
	"io/fs"
	"mime"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// webRoutes serves the portal's static files: / is index.html, /verify is
// verify.html, anything else a file of the portal. The pages keep no PHI
// in URLs, so no route carries ids.
func (s *Server) webRoutes() {
	serve := func(name string) fiber.Handler {
		return func(c *fiber.Ctx) error { return s.sendAsset(c, name) }
	}
	s.app.Get("/", serve("index.html"))
	s.app.Get("/verify", serve("verify.html"))
	s.app.Get("/assets/*", func(c *fiber.Ctx) error { return s.sendAsset(c, "assets/"+c.Params("*")) })
}

func (s *Server) sendAsset(c *fiber.Ctx, name string) error {
	name = path.Clean("/" + name)[1:]
	b, err := fs.ReadFile(s.cfg.Web, name)
	if err != nil {
		return fiber.ErrNotFound
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	c.Set(fiber.HeaderContentType, ct)
	// Same-origin everything: no CDN, no inline framing by other sites.
	c.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' http: https: ws: wss:; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("Referrer-Policy", "no-referrer")
	if strings.HasSuffix(name, ".html") {
		c.Set(fiber.HeaderCacheControl, "no-cache")
	}
	return c.Send(b)
}
