"""The wire side: TikTok's names and limits, event payloads, request bodies, the HTTP client, response
classification and request pacing. Touches no warehouse."""
