"""Quality (issue 17): the customer's satisfaction survey and the review of sampled recordings."""
