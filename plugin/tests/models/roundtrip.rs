// HF round trip: written next
