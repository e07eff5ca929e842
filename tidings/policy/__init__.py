"""Rules applied to requests and messages: rate limits now; contact policy and caps later."""
