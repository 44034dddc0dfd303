"""Real-time events: the Socket.IO server (auth on connect, a room per account) and emitters."""
