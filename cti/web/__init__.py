"""The browser side: login, roles, the supervisors' live queue monitor (pushed over a websocket)."""
