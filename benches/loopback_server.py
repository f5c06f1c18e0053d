"""Serves a folder over HTTP on 127.0.0.1 (threaded, quiet): the download benchmark's web.

  loopback_server.py DIR PORT
"""
import functools
import http.server
import sys

handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
handler.log_message = lambda *args: None
http.server.SimpleHTTPRequestHandler.log_message = lambda *args: None
server = http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[2])), handler)
server.daemon_threads = True
server.serve_forever()
