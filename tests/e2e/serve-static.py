# Serves static/ with the CSP the broker sends, so a CSP violation shows up in the browser.
# Usage: python3 serve-static.py PORT DIR
import http.server, functools, sys
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self' blob: mediastream:; connect-src 'self' https://api.openai.com; "
       "frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
class H(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header('Content-Security-Policy', CSP)
        self.send_header('Cache-Control', 'no-store')
        super().end_headers()
    def log_message(self, *a): pass
H.extensions_map['.js'] = 'text/javascript'
http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), functools.partial(H, directory=sys.argv[2])).serve_forever()
