"""This project's ML use case: card-transaction fraud detection. Teams replace it with their own."""
